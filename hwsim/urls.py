from django.urls import path

from . import views

app_name = "hwsim"
urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/status.json", views.run_status, name="run-status"),
    path("runs/<int:pk>/data.json", views.run_data, name="run-data"),
    path("runs/<int:pk>/<str:table>.csv", views.run_csv, name="run-csv"),
    path("runs/<int:pk>/trace.json", views.run_trace, name="run-trace"),
    path("runs/<int:pk>/prepare-downloads", views.run_prepare_downloads, name="run-prepare-downloads"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep"),
    path("sweeps/<int:pk>/status.json", views.sweep_status, name="sweep-status"),
    path("validation/", views.validation, name="validation"),
    path("provenance/", views.provenance, name="provenance"),
    path("twin/", views.twin_page, name="twin"),
    path("twin/start", views.twin_start, name="twin-start"),
    path("twin/stop", views.twin_stop, name="twin-stop"),
    path("twin/state.json", views.twin_state, name="twin-state"),
]
