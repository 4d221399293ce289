"""Top-level URL map."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from coe_site import health
from serving import openai_api

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("dashboard.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("v1/chat/completions", openai_api.chat_completions_view, name="v1-chat-completions"),
    path("v1/models", openai_api.models_view, name="v1-models"),
    path("hwsim/", include("hwsim.urls")),
    path("designer/", include("designer.urls")),
    path("", include("access.urls")),
    path("", include("experts.urls")),
    path("", include("routing.urls")),
]

handler404 = "coe_site.errors.not_found"
handler500 = "coe_site.errors.server_error"
