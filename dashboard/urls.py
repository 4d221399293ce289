from django.urls import path

from . import views

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("api/dashboard", views.api_dashboard, name="api-dashboard"),
]
