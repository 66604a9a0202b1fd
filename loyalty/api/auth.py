"""Team keys (`Authorization: Bearer fl_live_…`), their scopes and their rate limit."""

import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from loyalty.api_keys import KEY_PREFIX, hash_key
from loyalty.models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme != self.keyword or not token.startswith(KEY_PREFIX):
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer fl_live_…'.")
        key = ApiKey.objects.select_related("team").filter(key_hash=hash_key(token)).first()
        if key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        request._request.flash_api_key = key  # for the audit row
        now = timezone.now()
        # Coarse on purpose: one write a minute per key, not one per request.
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return (None, key)

    def authenticate_header(self, request):
        return self.keyword


class HasScope(BasePermission):
    """Views declare `required_scopes = {"GET": "points:read", ...}`."""

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("An API key is required.")
        needed = view.required_scope(request)
        if needed is not None and needed not in key.scopes:
            raise exceptions.PermissionDenied(f"This key lacks the '{needed}' scope.")
        return True


class KeyRateThrottle(BaseThrottle):
    """Fixed one-minute window per key, counted in the cache (Redis when REDIS_URL is set)."""

    def allow_request(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        window = int(time.time() // 60)
        counter = f"api-rate:{key.pk}:{window}"
        cache.add(counter, 0, timeout=120)
        try:
            count = cache.incr(counter)
        except ValueError:  # evicted between add and incr: start the window again
            cache.set(counter, 1, timeout=120)
            count = 1
        self._reset_in = 60 - int(time.time()) % 60
        return count <= key.rate_limit

    def wait(self):
        return getattr(self, "_reset_in", 60)
