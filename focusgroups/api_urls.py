from django.urls import path

from focusgroups import api
from focusgroups.assets import api as api_assets
from focusgroups.autonomous import api as autonomous_api
from focusgroups.discussion import api as api_discussion
from focusgroups.guide import api as api_guide
from focusgroups.quality import api as api_quality
from focusgroups.report import api as api_report

urlpatterns = [
    path("focus-groups/", api.FocusGroupListCreateView.as_view(), name="focusgroup-list"),
    path("focus-groups/<int:fg_id>/", api.FocusGroupDetailView.as_view(), name="focusgroup-detail"),
    path("focus-groups/<int:fg_id>/participants/", api.ParticipantsView.as_view(), name="focusgroup-participants"),
    path("focus-groups/<int:fg_id>/reopen/", api.ReopenView.as_view(), name="focusgroup-reopen"),
    path("focus-groups/<int:fg_id>/assets/", api_assets.AssetListCreateView.as_view(), name="focusgroup-assets"),
    path(
        "focus-groups/<int:fg_id>/assets/<int:asset_id>/", api_assets.AssetDetailView.as_view(), name="focusgroup-asset"
    ),
    path("focus-groups/<int:fg_id>/guide/", api_guide.GuideView.as_view(), name="focusgroup-guide"),
    path(
        "focus-groups/<int:fg_id>/guide/generate/",
        api_guide.GuideGenerateView.as_view(),
        name="focusgroup-guide-generate",
    ),
    path("focus-groups/<int:fg_id>/messages/", api_discussion.MessagesView.as_view(), name="focusgroup-messages"),
    path(
        "focus-groups/<int:fg_id>/messages/<int:message_id>/retry/",
        api_discussion.RetryView.as_view(),
        name="focusgroup-message-retry",
    ),
    path("focus-groups/<int:fg_id>/autonomous/", autonomous_api.AutonomousView.as_view(), name="focusgroup-autonomous"),
    path("focus-groups/<int:fg_id>/transcript/", api_discussion.TranscriptView.as_view(), name="focusgroup-transcript"),
    path("focus-groups/<int:fg_id>/analysis/", api_report.AnalysisView.as_view(), name="focusgroup-analysis"),
    path("focus-groups/<int:fg_id>/live-themes/", api_report.LiveThemesView.as_view(), name="focusgroup-live-themes"),
    path("focus-groups/<int:fg_id>/exports/<slug:kind>/", api_report.ExportView.as_view(), name="focusgroup-export"),
    path("focus-groups/<int:fg_id>/conformity/", api_quality.ConformityView.as_view(), name="focusgroup-conformity"),
    path("focus-groups/<int:fg_id>/quality/", api_quality.QualityView.as_view(), name="focusgroup-quality"),
    path(
        "focus-groups/<int:fg_id>/quality/check/",
        api_quality.QualityCheckView.as_view(),
        name="focusgroup-quality-check",
    ),
]
