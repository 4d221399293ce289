from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/route", views.api_route, name="api-route"),
    path("batches/", views.batches, name="batches"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("api/batches", views.api_batches, name="api-batches"),
    path("api/batches/<int:pk>", views.api_batch, name="api-batch"),
    path("api/batches/<int:pk>/results", views.api_batch_results, name="api-batch-results"),
    path("api/demo", views.api_demo, name="api-demo"),
    path("api/map/preview", views.preview_view, name="api-map-preview"),
    path("api/router/retrain", views.retrain_view, name="api-router-retrain"),
    path("api/router/retrain/<str:task_id>", views.retrain_status_view, name="api-router-retrain-status"),
]
