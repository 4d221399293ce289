from django.urls import path

from . import api, views

urlpatterns = [
    path("map/", views.editor, name="map-editor"),
    path("map/history/", views.history, name="map-history"),
    path("map/rollback/", views.rollback, name="map-rollback"),
    path("map/audit/", views.audit_log, name="map-audit"),
    path("map/categories/add/", views.category_add, name="category-add"),
    path("map/categories/<slug:name>/update/", views.category_update, name="category-update"),
    path("map/categories/<slug:name>/retire/", views.category_retire, name="category-retire"),
    path("map/experts/save/", views.expert_save, name="expert-save"),
    path("api/map", api.map_view, name="api-map"),
    path("api/map/rollback", api.rollback_view, name="api-map-rollback"),
    path("api/experts", api.experts_view, name="api-experts"),
    path("api/experts/<str:name>", api.expert_view, name="api-expert"),
]
