from django.urls import path

from focusgroups import views
from focusgroups.assets import views as views_assets
from focusgroups.autonomous import views as autonomous_views
from focusgroups.discussion import views as views_discussion
from focusgroups.guide import views as views_guide
from focusgroups.quality import views as views_quality
from focusgroups.report import views as views_report

app_name = "focusgroups"

urlpatterns = [
    # Sessions (views.py)
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("persona-picker/", views.persona_picker, name="persona_picker"),
    path("<int:fg_id>/edit/", views.edit, name="edit"),
    path("<int:fg_id>/archive/", views.archive, name="archive"),
    path("<int:fg_id>/reopen/", views.reopen, name="reopen"),
    path("<int:fg_id>/delete/", views.delete, name="delete"),
    # Assets (views_assets.py)
    path("<int:fg_id>/assets/", views_assets.assets, name="assets"),
    path("<int:fg_id>/assets/<int:asset_id>/delete/", views_assets.asset_delete, name="asset_delete"),
    path("<int:fg_id>/assets/<int:asset_id>/image/", views_assets.asset_image, name="asset_image"),
    # Discussion guide (views_guide.py)
    path("<int:fg_id>/guide/", views_guide.guide, name="guide"),
    path("<int:fg_id>/guide/generate/", views_guide.guide_generate, name="guide_generate"),
    path("<int:fg_id>/guide/export.md", views_guide.guide_export, name="guide_export"),
    # The live discussion (views_discussion.py)
    path("<int:fg_id>/", views_discussion.discussion, name="detail"),
    path("<int:fg_id>/messages/", views_discussion.post_message, name="post_message"),
    path("<int:fg_id>/transcript/", views_discussion.transcript, name="transcript"),
    path("<int:fg_id>/live/", views_discussion.live_state, name="live_state"),
    path("<int:fg_id>/messages/<int:message_id>/retry/", views_discussion.retry_answer, name="retry_answer"),
    path("<int:fg_id>/status/", views_discussion.set_status, name="set_status"),
    path("<int:fg_id>/autonomous/<str:action>/", autonomous_views.autonomous, name="autonomous"),
    path("<int:fg_id>/compare/", views_report.compare, name="compare"),
    path("<int:fg_id>/replay/", views_report.replay, name="replay"),
    # Themes, report and exports (views_report.py)
    path("<int:fg_id>/report/", views_report.report, name="report"),
    path("<int:fg_id>/report/analyse/", views_report.analyse, name="analyse"),
    path("<int:fg_id>/export/<slug:kind>/", views_report.export, name="export"),
    # Quality checks: conformity and the judge (quality/views.py)
    path("<int:fg_id>/quality/", views_quality.quality, name="quality"),
    path("<int:fg_id>/quality/check/", views_quality.quality_check, name="quality_check"),
]
