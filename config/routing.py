from django.urls import path

from cohorta.jobs.consumers import JobConsumer
from focusgroups.consumers import SessionConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobConsumer.as_asgi()),
    path("ws/focus-groups/<int:fg_id>/", SessionConsumer.as_asgi()),
]
