from django.urls import path

from . import views

app_name = "terminals"

urlpatterns = [
    path("open/<slug:kind>/", views.open_terminal, name="open"),
    path("sessions/", views.session_list, name="sessions"),
    path("sessions/<uuid:pk>/", views.replay, name="replay"),
    path("sessions/<uuid:pk>/recording.cast", views.recording, name="recording"),
    path("sessions/<uuid:pk>/end/", views.end_session, name="end"),
]
