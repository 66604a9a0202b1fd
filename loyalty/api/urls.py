from django.urls import path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.decorators import api_view, authentication_classes, permission_classes

from loyalty import errors

from . import views


class PublicSchema(SpectacularAPIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    renderer_classes = SpectacularAPIView.renderer_classes


class PublicDocs(SpectacularSwaggerView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([])
def unknown(request, rest=""):
    raise errors.NotFound("No such API endpoint. See /api/v2/docs/.")


unknown = extend_schema(exclude=True)(unknown)

urlpatterns = [
    path("schema/", PublicSchema.as_view(), name="api-schema"),
    path("docs/", PublicDocs.as_view(url_name="api-schema"), name="api-docs"),
    path("members", views.Members.as_view()),
    path("members/<str:memberId>/points", views.MemberPoints.as_view()),
    path("members/<str:memberId>/purchases", views.MemberPurchases.as_view()),
    path("members/<str:memberId>/purchases/<str:orderId>/refunds", views.PurchaseRefunds.as_view()),
    path("members/<str:memberId>/tier", views.MemberTier.as_view()),
    path("members/<str:memberId>/coupons", views.MemberCoupons.as_view()),
    path("coupons/<str:couponId>/redeem", views.CouponRedeem.as_view()),
    path("stores", views.Stores.as_view()),
    re_path(r"^(?P<rest>.*)$", unknown),
]
