from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/route", views.api_route, name="api-route"),
]
