from django.urls import path

from . import views

app_name = "designer"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.table, name="table"),
    path("<int:pk>/link", views.link, name="link"),
    path("<int:pk>/apply", views.apply, name="apply"),
]
