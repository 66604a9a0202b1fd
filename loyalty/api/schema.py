"""Teach drf-spectacular our bearer-key authentication (loaded from the app config)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "loyalty.api.auth.ApiKeyAuthentication"
    name = "teamKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "fl_live_…",
            "description": "A team API key; scopes decide what it may call.",
        }
