"""Demo data: sellers, shops, orders (with realistic — invented — buyer PII) and a catalog.

The credentials are fixed so the demo can print them and the tests can rely on them; they are
sandbox credentials and open nothing real. TikTok rotates refresh tokens, so the TikTok refresh
token printed here works once per sandbox run (as a real one would)."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from .amazon import AmazonItem
from .state import Sandbox
from .tiktok import TikTokShop, line_items

DAY = 24 * 3600

AMAZON = {
    "client_id": "amzn1.application-oa2-client.4f2ad0c1e9b84a7f9c3e5d6b7a8f9e01",
    "client_secret": "amzn1.oa2-cs.v1.7d1e4c9b2a6f8e3d5c7b9a1f2e4d6c8b0a9f7e5d3c1b2a4f6e8d0c2b",
    "refresh_token": "Atzr|IwEBIDemoAlphaCoffeeRoasters-Q2h5ZGVtb3JlZnJlc2h0b2tlbg",
    "seller_id": "A2DEMO7ALPHA01",
    "region": "na",
    "marketplace_ids": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
    "order_id": "114-3941689-8772232",
}
AMAZON_OTHER = {
    "client_id": "amzn1.application-oa2-client.9b7c5e3a1d2f4b6c8e0a2c4e6f8b0d2a",
    "client_secret": "amzn1.oa2-cs.v1.1a3c5e7b9d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e",
    "refresh_token": "Atzr|IwEBIDemoRivalRoasters-Uml2YWxyZWZyZXNodG9rZW4",
    "seller_id": "A3DEMO9RIVAL02",
    "order_id": "702-8219473-1184105",
}
TIKTOK = {
    "app_key": "6kdemoalpha42",
    "app_secret": "3f9a7c21d8e44b6a9c0e51f27d3b8a64e2c9f1a0",
    "refresh_token": "ROW_DemoAlphaRefresh_Zm9yLXRoZS1kZW1vLW9ubHk",
    "open_id": "AlphaOpenId_7Jz3kQ",
    "shop_id": "7495610823476234567",
    "shop_cipher": "ROW_Xa9TQwAAAAB3aGxwaGFzaG9wY2lwaGVy",
    "order_id": "576473918204756121",
}
TIKTOK_OTHER = {
    "app_key": "6kdemorival77",
    "app_secret": "b81d0e6f4c2a49378e5d1c0b9a8f7e6d5c4b3a21",
    "refresh_token": "ROW_DemoRivalRefresh_cml2YWwtcmVmcmVzaA",
    "open_id": "RivalOpenId_9Qx2mP",
    "shop_id": "7495610823476239999",
    "shop_cipher": "ROW_Yb8UQwAAAAC4cml2YWxzaG9wY2lwaGVy",
    "order_id": "577120934857261843",
}
SHOPIFY = {
    "shop_domain": "demo-store.myshopify.com",
    "access_token": "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",
    "client_id": "8c1f3a5e7b9d1f3a5c7e9b1d3f5a7c9e",
    "client_secret": "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",
}
SHOPIFY_OTHER = {
    "shop_domain": "rival-store.myshopify.com",
    "access_token": "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",
    "client_id": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
    "client_secret": "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",
}

PEOPLE = [
    ("Jordan", "Ellis", "1201 3rd Ave", "Seattle", "WA", "98101", "US", "206-555-0134"),
    ("Priya", "Raman", "2210 NW Flanders St", "Portland", "OR", "97210", "US", "503-555-0187"),
    ("Marcus", "Bell", "3452 24th St", "San Francisco", "CA", "94110", "US", "415-555-0142"),
    ("Elena", "Kowalski", "455 W 37th St Apt 12B", "New York", "NY", "10018", "US", "212-555-0199"),
    ("Tomás", "Herrera", "1846 N Halsted St", "Chicago", "IL", "60614", "US", "312-555-0166"),
    ("Grace", "Okafor", "1600 S Congress Ave", "Austin", "TX", "78704", "US", "512-555-0121"),
    ("Liam", "O'Connor", "88 Blue Jays Way", "Toronto", "ON", "M5V 2T6", "CA", "416-555-0173"),
    (
        "Chloé",
        "Tremblay",
        "1250 Rue Sainte-Catherine O",
        "Montréal",
        "QC",
        "H3G 1P1",
        "CA",
        "514-555-0158",
    ),
    ("Noah", "Chen", "650 W Georgia St", "Vancouver", "BC", "V6B 4N8", "CA", "604-555-0112"),
    ("Amara", "Diallo", "77 Massachusetts Ave", "Cambridge", "MA", "02139", "US", "617-555-0148"),
]

AMAZON_PRODUCTS = [
    (
        "B0CX23V2ZK",
        "ALPHA-ETH-12",
        "Ethiopia Yirgacheffe Whole Bean Coffee, Light Roast, 12 oz",
        "18.50",
    ),
    ("B0CX2M8Q1T", "ALPHA-ESP-2LB", "House Espresso Blend Whole Bean Coffee, 2 lb", "34.00"),
    ("B0BZ7Y4KJW", "ALPHA-V60-CER", "Ceramic Pour-Over Coffee Dripper, Size 02, White", "27.95"),
    ("B0C1F6N9PX", "ALPHA-CB-32", "Cold Brew Coffee Concentrate, Unsweetened, 32 fl oz", "14.99"),
    ("B0D4R2T7LM", "ALPHA-DECAF-12", "Swiss Water Decaf Colombia Ground Coffee, 12 oz", "16.75"),
]

ORIGINS = [
    "Ethiopia Yirgacheffe",
    "Kenya Nyeri AA",
    "Colombia Huila",
    "Guatemala Antigua",
    "Costa Rica Tarrazú",
    "Sumatra Mandheling",
    "Brazil Cerrado",
    "Rwanda Nyamasheke",
    "Honduras Marcala",
    "Peru Cajamarca",
]
FORMATS = [
    "Whole Bean 12 oz",
    "Ground 12 oz",
    "Whole Bean 2 lb",
    "Single-Serve Pods 24 ct",
    "Sample 4 oz",
]


def _address(person) -> dict:
    first, last, street, city, state, postal, country, phone = person
    return {
        "name": f"{first} {last}",
        "addressLine1": street,
        "city": city,
        "stateOrRegion": state,
        "postalCode": postal,
        "countryCode": country,
        "phone": phone,
        "addressType": "RESIDENTIAL",
    }


def _tiktok_address(person) -> dict:
    first, last, street, city, state, postal, country, phone = person
    return {
        "name": f"{first} {last}",
        "first_name": first,
        "last_name": last,
        "phone_number": f"(+1){phone}",
        "address_line1": street,
        "address_detail": street,
        "full_address": f"{street}, {city}, {state}, {postal}, {country}",
        "postal_code": postal,
        "region_code": country,
        "district_info": [
            {"address_level_name": "State", "address_name": state},
            {"address_level_name": "City", "address_name": city},
        ],
    }


def _amazon_id(rng: random.Random) -> str:
    return f"{rng.randint(111, 114)}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}"


def seed_demo(sandbox: Sandbox, *, seed: int = 2026) -> dict:
    """Fill `sandbox` with the demo world; returns (and stores as `sandbox.demo`) the demo
    credentials and notable order ids."""
    rng = random.Random(seed)
    now = time.time()

    # --- Amazon: two sellers, each through their own LWA app ---
    amazon = sandbox.amazon
    amazon.add_app(AMAZON["client_id"], AMAZON["client_secret"])
    amazon.add_app(AMAZON_OTHER["client_id"], AMAZON_OTHER["client_secret"])
    amazon.add_seller(
        seller_id=AMAZON["seller_id"],
        name="Alpha Coffee Roasters",
        store_name="Alpha Coffee",
        client_id=AMAZON["client_id"],
        refresh_token=AMAZON["refresh_token"],
        marketplace_ids=list(AMAZON["marketplace_ids"]),
    )
    amazon.add_seller(
        seller_id=AMAZON_OTHER["seller_id"],
        name="Rival Roasters LLC",
        store_name="Rival Roasters",
        client_id=AMAZON_OTHER["client_id"],
        refresh_token=AMAZON_OTHER["refresh_token"],
        marketplace_ids=["ATVPDKIKX0DER"],
    )
    statuses = ["SHIPPED"] * 6 + ["UNSHIPPED", "UNSHIPPED", "PENDING", "PARTIALLY_SHIPPED"]
    statuses += ["CANCELLED", "SHIPPED"]
    amazon_ids = []
    for n, status in enumerate(statuses):
        person = PEOPLE[n % len(PEOPLE)]
        marketplace = "A2EUQ1WTGCTBG2" if person[6] == "CA" else "ATVPDKIKX0DER"
        picks = rng.sample(AMAZON_PRODUCTS, rng.randint(1, 3))
        created = now - rng.uniform(2, 28) * DAY
        order = amazon.add_order(
            seller_id=AMAZON["seller_id"],
            order_id=AMAZON["order_id"] if n == 0 else _amazon_id(rng),
            marketplace_id=marketplace,
            created=created,
            updated=created + rng.uniform(0.1, 2) * DAY,
            status=status,
            items=[
                AmazonItem(asin, sku, title, rng.randint(1, 2), Decimal(price))
                for asin, sku, title, price in picks
            ],
            buyer={
                "buyerName": f"{person[0]} {person[1]}",
                "buyerEmail": f"{rng.getrandbits(40):x}@marketplace.amazon.com",
            },
            recipient=_address(person),
        )
        amazon_ids.append(order.order_id)
    for n in range(3):
        person = PEOPLE[(n + 3) % len(PEOPLE)]
        created = now - rng.uniform(2, 20) * DAY
        amazon.add_order(
            seller_id=AMAZON_OTHER["seller_id"],
            order_id=AMAZON_OTHER["order_id"] if n == 0 else _amazon_id(rng),
            marketplace_id="ATVPDKIKX0DER",
            created=created,
            updated=created + DAY,
            status="SHIPPED",
            items=[
                AmazonItem(
                    "B09RIVAL001", "RIVAL-HB-1", "Rival House Blend, 1 lb", 1, Decimal("21.00")
                )
            ],
            buyer={
                "buyerName": f"{person[0]} {person[1]}",
                "buyerEmail": "r@marketplace.amazon.com",
            },
            recipient=_address(person),
        )

    # --- TikTok Shop: two sellers, one shop each ---
    tiktok = sandbox.tiktok
    for creds, seller_name, shop_name, code in (
        (TIKTOK, "Alpha Coffee US", "Alpha Coffee Shop", "USLCALPHA1"),
        (TIKTOK_OTHER, "Rival Roasters", "Rival Roasters Shop", "USLCRIVAL2"),
    ):
        tiktok.add_app(creds["app_key"], creds["app_secret"])
        tiktok.add_seller(
            open_id=creds["open_id"],
            seller_name=seller_name,
            region="US",
            app_key=creds["app_key"],
            refresh_token=creds["refresh_token"],
            shops=[TikTokShop(creds["shop_id"], shop_name, "US", code, creds["shop_cipher"])],
        )
    tt_products = [
        ("1729587301234567890", "Alpha Cold Brew Bags", "8 pack", "12.99"),
        ("1729587301234568002", "Alpha Espresso Blend Whole Bean", "12 oz", "17.49"),
        ("1729587301234568114", "Alpha Enamel Camp Mug", "Forest Green", "15.00"),
    ]
    tt_statuses = ["COMPLETED", "DELIVERED", "DELIVERED", "IN_TRANSIT", "AWAITING_SHIPMENT"]
    tt_statuses += ["AWAITING_COLLECTION", "COMPLETED", "CANCELLED", "UNPAID", "DELIVERED"]
    tiktok_ids = []
    for n, status in enumerate(tt_statuses):
        person = PEOPLE[(n + 1) % len(PEOPLE)]
        if person[6] != "US":
            person = PEOPLE[n % 6]
        pid, name, sku, price = tt_products[n % len(tt_products)]
        created = int(now - rng.uniform(2, 25) * DAY)
        order = tiktok.add_order(
            shop_id=TIKTOK["shop_id"],
            id=TIKTOK["order_id"]
            if n == 0
            else str(rng.randint(576_000_000_000_000_000, 576_999_999_999_999_999)),
            status=status,
            create_time=created,
            update_time=created + rng.randint(3600, 3 * DAY),
            shipping_fee=Decimal("4.99"),
            tax=Decimal("1.20"),
            line_items=line_items(pid, name, sku, price, quantity=rng.randint(1, 2)),
            user_id=str(rng.randint(7_000_000_000_000_000_000, 7_999_999_999_999_999_999)),
            buyer_email=f"v2_{rng.getrandbits(48):x}@scs.tiktokw.us",
            recipient=_tiktok_address(person),
            cancel_reason="Buyer requested cancellation" if status == "CANCELLED" else "",
        )
        tiktok_ids.append(order.id)
    tiktok.add_order(
        shop_id=TIKTOK_OTHER["shop_id"],
        id=TIKTOK_OTHER["order_id"],
        status="DELIVERED",
        create_time=int(now - 6 * DAY),
        update_time=int(now - 4 * DAY),
        line_items=line_items("1729500000000000001", "Rival Drip Bags", "10 pack", "13.50"),
        buyer_email="v2_5f1e2d3c4b5a@scs.tiktokw.us",
        recipient=_tiktok_address(PEOPLE[2]),
    )

    # --- Shopify: the demo store (~50 products) and a rival store ---
    shopify = sandbox.shopify
    for creds, name in ((SHOPIFY, "Alpha Coffee Roasters"), (SHOPIFY_OTHER, "Rival Roasters")):
        shopify.add_shop(
            domain=creds["shop_domain"],
            name=name,
            currency="USD",
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            legacy_tokens={creds["access_token"]},
        )
    for n, (origin, fmt) in enumerate((o, f) for o in ORIGINS for f in FORMATS):
        shopify.add_product(
            SHOPIFY["shop_domain"],
            f"{origin} — {fmt}",
            status="ACTIVE" if n % 9 else "DRAFT",
            product_type="Coffee",
            inventory=rng.randint(0, 240),
        )
    shopify.add_product(SHOPIFY_OTHER["shop_domain"], "Rival House Blend — 1 lb")
    buyers = [
        ("ann@example.com", "Ann", "Lee"),
        ("maria.gonzalez@example.com", "María", "González"),
        ("dev.patel@example.org", "Dev", "Patel"),
        ("sam.oneill@example.net", "Sam", "O'Neill"),
        ("yuki.tanaka@example.com", "Yuki", "Tanaka"),
    ]
    shop_statuses = [
        ("PAID", "FULFILLED"),
        ("PAID", "UNFULFILLED"),
        ("PAID", "FULFILLED"),
        ("PENDING", "UNFULFILLED"),
        ("PARTIALLY_REFUNDED", "FULFILLED"),
        ("PAID", "PARTIALLY_FULFILLED"),
        ("PAID", "FULFILLED"),
        ("REFUNDED", "UNFULFILLED"),
    ]
    shopify_ids = []
    for n, (financial, fulfillment) in enumerate(shop_statuses):
        email, first, last = buyers[n % len(buyers)]
        created = now - rng.uniform(1, 20) * DAY
        qty = rng.randint(1, 3)
        order = shopify.add_order(
            SHOPIFY["shop_domain"],
            email=email,
            customer={
                "id": 7_100_000_000 + n,
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": f"+1206555{1000 + n}",
            },
            created=created,
            updated=created + rng.uniform(0.05, 1) * DAY,
            line_items=[
                {"title": f"{ORIGINS[n]} — Whole Bean 12 oz", "quantity": qty, "price": "18.50"}
            ],
            financial="PAID" if "REFUNDED" in financial else financial,
            fulfillment=fulfillment,
        )
        if financial == "PARTIALLY_REFUNDED":
            shopify.refund(order.id, Decimal("18.50"))
        elif financial == "REFUNDED":
            shopify.cancel(order.id)
        if order.refunds:  # history, not news: the refund happened a while after the order
            order.updated = order.refunds[-1]["at"] = created + 2 * DAY
            if order.cancelled_at:
                order.cancelled_at = order.updated
        shopify_ids.append(order.gid)
    other_order = shopify.add_order(
        SHOPIFY_OTHER["shop_domain"],
        email="ann@example.com",
        customer={"id": 7_200_000_001, "email": "ann@example.com", "first_name": "Ann"},
        created=now - 3 * DAY,
    )

    demo = {
        "amazon": {
            **AMAZON,
            "orders": amazon_ids,
            "other": dict(AMAZON_OTHER),
        },
        "tiktok": {**TIKTOK, "orders": tiktok_ids, "other": dict(TIKTOK_OTHER)},
        "shopify": {
            **SHOPIFY,
            "orders": shopify_ids,
            "other": {**SHOPIFY_OTHER, "order_gid": other_order.gid},
        },
    }
    sandbox.demo = demo
    return demo
