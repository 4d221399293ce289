from django.urls import path

from . import views

urlpatterns = [
    path("account/tokens/", views.tokens_page, name="tokens"),
    path("account/tokens/<int:pk>/revoke/", views.revoke_page, name="token-revoke"),
    path("api/tokens", views.tokens_api, name="api-tokens"),
    path("api/tokens/<int:pk>", views.token_api, name="api-token"),
]
