from django.urls import path

from panels import api

urlpatterns = [
    path("panels/", api.PanelListCreateView.as_view(), name="panel-list"),
    path("panels/targets/", api.TargetListView.as_view(), name="panel-targets"),
    path("panels/targets/marginals/", api.MarginalsUploadView.as_view(), name="panel-target-marginals"),
    path(
        "panels/targets/marginals/<int:population_id>/",
        api.MarginalsDetailView.as_view(),
        name="panel-target-marginals-detail",
    ),
    path("panels/targets/microdata/", api.MicrodataUploadView.as_view(), name="panel-target-microdata"),
    path(
        "panels/targets/microdata/<int:microdata_id>/",
        api.MicrodataDetailView.as_view(),
        name="panel-target-microdata-detail",
    ),
    path("panels/<int:panel_id>/", api.PanelDetailView.as_view(), name="panel-detail"),
    path("panels/<int:panel_id>/composition/", api.PanelCompositionView.as_view(), name="panel-composition"),
    path("panels/<int:panel_id>/quality/", api.PanelQualityView.as_view(), name="panel-quality"),
    path(
        "panels/<int:panel_id>/composition/csv/",
        api.PanelCompositionCsvView.as_view(),
        name="panel-composition-csv",
    ),
]
