"""Books through a Python client that openapi-python-client generated from the service's own
OpenAPI document: list the accommodations, pre-reserve, get 409 on the same dates, show the
reservation. Run by backend/tests/openapi_clients.rs with the tools' virtual environment.

Usage: book_with_generated_client.py BASE_URL PACKAGE_PARENT PACKAGE CHECK_IN CHECK_OUT
"""

import datetime
import importlib
import sys
from http import HTTPStatus


def main() -> None:
    base_url, package_parent, package, check_in, check_out = sys.argv[1:6]
    sys.path.insert(0, package_parent)
    generated = importlib.import_module(package)
    api = f"{package}.api.reservations"
    list_accommodations = importlib.import_module(f"{api}.list_accommodations")
    pre_reserve = importlib.import_module(f"{api}.pre_reserve")
    get_reservation = importlib.import_module(f"{api}.get_reservation")
    models = importlib.import_module(f"{package}.models")

    # An undocumented status raises instead of passing as None.
    client = generated.Client(base_url=base_url, raise_on_unexpected_status=True, timeout=30.0)

    listed = list_accommodations.sync_detailed(client=client)
    assert listed.status_code == HTTPStatus.OK, listed.content
    cabins = listed.parsed
    assert isinstance(cabins, list) and cabins, f"no accommodations: {listed.content!r}"
    assert all(isinstance(c, models.AccommodationView) for c in cabins), cabins
    cabin = cabins[0]

    request = models.PreReserveRequest(
        accommodation_id=cabin.id,
        channel="web",
        check_in=datetime.date.fromisoformat(check_in),
        check_out=datetime.date.fromisoformat(check_out),
        contact_name="Ana Pérez",
        contact_phone="+54 9 11 5555-0000",
        guests=2,
    )
    created = pre_reserve.sync_detailed(client=client, body=request)
    assert created.status_code == HTTPStatus.CREATED, created.content
    reservation = created.parsed
    assert isinstance(reservation, models.ReservationView), reservation
    assert reservation.status == "pre_reserved", reservation
    assert reservation.nights == 2, reservation

    refused = pre_reserve.sync_detailed(client=client, body=request)
    assert refused.status_code == HTTPStatus.CONFLICT, refused.content
    assert isinstance(refused.parsed, models.ErrorBody), refused.parsed
    assert refused.parsed.error == "date_overlap", refused.parsed

    shown = get_reservation.sync_detailed(reservation.code, client=client)
    assert shown.status_code == HTTPStatus.OK, shown.content
    assert isinstance(shown.parsed, models.ReservationView), shown.parsed
    assert shown.parsed.code == reservation.code, shown.parsed
    assert shown.parsed.accommodation_id == cabin.id, shown.parsed
    assert shown.parsed.check_in.isoformat() == check_in, shown.parsed

    print(
        f"listed {len(cabins)} accommodation(s), pre-reserved {reservation.code}, "
        f"409 {refused.parsed.error} on the same dates, showed {shown.parsed.code}"
    )


if __name__ == "__main__":
    main()
