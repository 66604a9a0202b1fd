"""The WSGI app: one process serves all three platforms under path prefixes, plus a small JSON
control API under `/_sandbox` for the demo and for tests in another process.

    /amazon/...            SP-API; LWA at /amazon/auth/o2/token
    /tiktok/...            TikTok Shop Partner API
    /tiktok-auth/...       TikTok auth (token refresh)
    /shopify/<domain>/...  Shopify Admin (GraphQL, client-credentials token)
    /_sandbox/...          control API (see CONTROL_ROUTES)
"""

from __future__ import annotations

import re
import sys
import traceback
from decimal import Decimal
from http import HTTPStatus

from .core import Request, Response, json_response, parse_iso
from .state import Sandbox

CONTROL_ROUTES = """\
GET  /_sandbox                                summary: orders, faults, call counts
GET  /_sandbox/demo                           demo credentials and notable order ids
GET  /_sandbox/calls                          {"calls": {"amazon.getOrder": n, …}, "throttled"}
POST /_sandbox/calls/reset
POST /_sandbox/faults                         {platform, operation="*", mode, times?, seconds?,
                                               retry_after?}
POST /_sandbox/faults/clear                   {platform?, operation?}
POST /_sandbox/rate_limits                    {operation, rate, burst}          (Amazon)
POST /_sandbox/shopify/bucket                 {shop, maximum, restore_rate}
POST /_sandbox/tokens/expire                  {platform?}
POST /_sandbox/orders                         {platform, owner, …order fields} → {order_id}
POST /_sandbox/orders/<platform>/<id>/refund  {amount?}   (Amazon, TikTok: also a refund event)
POST /_sandbox/orders/<platform>/<id>/cancel
POST /_sandbox/orders/<platform>/<id>/update  {field: value, …}
POST /_sandbox/shopify/webhooks/send          {url, topic, order_id, event_id?, secret?}
GET  /_sandbox/shopify/<domain>/webhooks      the subscriptions the app registered
"""

PREFIXES = (
    ("/tiktok-auth", "tiktok_auth"),
    ("/tiktok", "tiktok"),
    ("/amazon", "amazon"),
    ("/shopify", "shopify"),
    ("/_sandbox", "control"),
)


def make_app(sandbox: Sandbox, *, log=None):
    def app(environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        try:
            response = _dispatch(sandbox, environ, path)
        except Exception:  # the emulator must answer, even about its own bugs
            traceback.print_exc(file=sys.stderr)
            response = json_response(500, {"error": "The sandbox failed; see its log."})
        if log:
            log(f"{environ['REQUEST_METHOD']} {path} → {response.status}")
        headers = [("Content-Type", response.content_type), *response.headers]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [response.body]

    return app


def _dispatch(sandbox: Sandbox, environ, path: str) -> Response:
    for prefix, target in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            req = Request(environ, path[len(prefix) :] or "/")
            if target == "amazon":
                return sandbox.amazon.handle(req)
            if target == "tiktok":
                return sandbox.tiktok.handle_api(req)
            if target == "tiktok_auth":
                return sandbox.tiktok.handle_auth(req)
            if target == "shopify":
                return sandbox.shopify.handle(req)
            return _control(sandbox, req)
    return json_response(404, {"error": "Unknown path", "prefixes": [p for p, _ in PREFIXES]})


def _control(sb: Sandbox, req: Request) -> Response:
    body = req.json() if req.method == "POST" else {}
    if not isinstance(body, dict):
        return json_response(400, {"error": "Send a JSON object."})
    path = req.path.rstrip("/") or "/"
    try:
        if req.method == "GET" and path == "/":
            return json_response(200, sb.summary())
        if req.method == "GET" and path == "/demo":
            return json_response(200, sb.demo)
        if req.method == "GET" and path == "/calls":
            return json_response(200, sb.calls())
        if req.method == "GET":
            match = re.match(r"^/shopify/([^/]+)/webhooks$", path)
            if match and match.group(1) in sb.shopify.shops:
                return json_response(200, {"webhooks": sb.shopify.shops[match.group(1)].webhooks})
            return json_response(404, {"error": "Unknown control route", "routes": CONTROL_ROUTES})
        if path == "/calls/reset":
            sb.reset_calls()
        elif path == "/faults":
            sb.set_fault(
                body["platform"],
                body.get("operation", "*"),
                body["mode"],
                times=body.get("times"),
                seconds=float(body.get("seconds", 0)),
                retry_after=float(body.get("retry_after", 1)),
            )
        elif path == "/faults/clear":
            sb.clear_faults(body.get("platform"), body.get("operation"))
        elif path == "/rate_limits":
            sb.set_rate_limit(body["operation"], float(body["rate"]), int(body["burst"]))
        elif path == "/shopify/bucket":
            sb.set_shopify_bucket(body["shop"], float(body["maximum"]), float(body["restore_rate"]))
        elif path == "/tokens/expire":
            sb.expire_access_tokens(body.get("platform"))
        elif path == "/orders":
            fields = _order_fields(body)
            order_id = sb.add_order(fields.pop("platform"), fields.pop("owner"), **fields)
            return json_response(201, {"order_id": order_id})
        elif path == "/shopify/webhooks/send":
            status, response_body, headers = sb.send_shopify_webhook(
                body["url"],
                topic=body["topic"],
                order_id=body.get("order_id"),
                event_id=body.get("event_id"),
                secret=body.get("secret"),
            )
            return json_response(
                200,
                {
                    "status": status,
                    "event_id": headers["X-Shopify-Event-Id"],
                    "webhook_id": headers["X-Shopify-Webhook-Id"],
                },
            )
        else:
            match = re.match(r"^/orders/(amazon|tiktok|shopify)/(.+)/(refund|cancel|update)$", path)
            if not match:
                return json_response(
                    404, {"error": "Unknown control route", "routes": CONTROL_ROUTES}
                )
            platform, order_id, action = match.groups()
            if action == "refund":
                sb.refund_order(platform, order_id, body.get("amount"))
            elif action == "cancel":
                sb.cancel_order(platform, order_id)
            else:
                sb.update_order(platform, order_id, **body)
    except KeyError as exc:
        return json_response(404, {"error": f"Unknown or missing: {exc}"})
    except (TypeError, ValueError) as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(200, {"ok": True})


def _order_fields(body: dict) -> dict:
    """JSON → Python for an order added over HTTP: ISO times to epoch, amounts to Decimal."""
    fields = dict(body)
    for key in ("created", "updated", "create_time", "update_time"):
        if isinstance(fields.get(key), str):
            ts = parse_iso(fields[key])
            if ts is None:
                raise ValueError(f"{key} must be an ISO 8601 time")
            fields[key] = int(ts) if key.endswith("_time") else ts
    for key in ("total", "sub_total", "shipping_fee", "tax"):
        if key in fields:
            fields[key] = Decimal(str(fields[key]))
    if fields.get("platform") == "amazon" and "items" in fields:
        for item in fields["items"]:
            item["price"] = Decimal(str(item["price"]))
    return fields
