"""Values as templates see them: German numbers and dates, MISSING, Record and as_list."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import MappingError
from gateway.mapping.values import MISSING, Record, as_list, format_date, format_number, to_datetime, to_decimal

# --- format_number -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0,01"),  # half up, not banker's rounding
        ("0.015", "0,02"),
        ("0.025", "0,03"),
        ("0.004", "0,00"),
        ("12.9", "12,90"),
        ("1234.5", "1234,50"),
        ("-3", "-3,00"),
        ("-0.005", "-0,01"),  # half up means away from zero
        ("-0.004", "0,00"),  # no "-0,00"
        (Decimal("7.125"), "7,13"),
        (2.675, "2,68"),  # a float goes by its shortest repr, not by its binary value 2.67499…
        (5, "5,00"),
    ],
)
def test_format_number_rounds_half_up_to_two_places_with_a_decimal_comma(value: object, expected: str) -> None:
    assert format_number(value) == expected


@pytest.mark.parametrize(
    ("value", "thousands", "expected"),
    [
        ("1234567.891", ".", "1.234.567,89"),
        ("-1234567.891", ".", "-1.234.567,89"),
        ("123456.5", ".", "123.456,50"),
        ("999.999", ".", "1.000,00"),  # rounding carries into a new group
        ("100", ".", "100,00"),
        ("1000", "", "1000,00"),
        ("1234567", " ", "1 234 567,00"),
    ],
)
def test_format_number_groups_thousands_only_when_asked(value: str, thousands: str, expected: str) -> None:
    assert format_number(value, thousands=thousands) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", "2"), ("2.5", "3"), ("-2.5", "-3"), ("2.49", "2"), ("0.4", "0"), ("-0.4", "0"), ("1234.5", "1235")],
)
def test_format_number_with_no_places_has_no_decimal_comma(value: str, expected: str) -> None:
    assert format_number(value, places=0) == expected


def test_format_number_can_use_a_point_and_more_places() -> None:
    assert format_number("1234.56789", places=3, decimal=".", thousands=",") == "1,234.568"


def test_format_number_of_an_empty_field_says_it_is_empty() -> None:
    with pytest.raises(MappingError) as err:
        format_number(MISSING)
    assert err.value.message == "expected a number, but the field is empty"


def test_format_number_refuses_a_german_number_because_inputs_use_a_point() -> None:
    with pytest.raises(MappingError) as err:
        format_number("12,90")
    assert err.value.message == "expected a number like 1234.50"
    assert err.value.value == "12,90"


def test_format_number_of_an_absurdly_long_number_is_a_mapping_error() -> None:
    with pytest.raises(MappingError):
        format_number("1" * 27)


# --- to_decimal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.90", Decimal("12.90")),
        ("-3", Decimal("-3")),
        ("+3", Decimal("3")),
        (".5", Decimal("0.5")),
        ("12.", Decimal("12")),
        ("  7.25 \n", Decimal("7.25")),
        ("0", Decimal("0")),
    ],
)
def test_to_decimal_reads_numbers_with_a_point(text: str, expected: Decimal) -> None:
    assert to_decimal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,50", Decimal("1234.50")),
        ("1.234.567,5", Decimal("1234567.5")),
        ("12,90", Decimal("12.90")),
        ("-3", Decimal("-3")),
        ("-1.000", Decimal("-1000")),  # with german, a point groups thousands
        ("1234", Decimal("1234")),
    ],
)
def test_to_decimal_reads_german_numbers_when_asked(text: str, expected: Decimal) -> None:
    assert to_decimal(text, german=True) == expected


def test_to_decimal_passes_numbers_through() -> None:
    assert to_decimal(Decimal("1.50")) == Decimal("1.50")
    assert to_decimal(42) == Decimal(42)


@pytest.mark.parametrize("text", ["12,90", "1.234,50", "abc", "12.9.0", "1e5", "NaN", "Infinity", "12 90", "- 3"])
def test_to_decimal_refuses_anything_but_a_point_number(text: str) -> None:
    with pytest.raises(MappingError) as err:
        to_decimal(text)
    assert err.value.message == "expected a number like 1234.50"
    assert err.value.value == text
    assert str(err.value) == f"expected a number like 1234.50 (the value was {text!r})"


@pytest.mark.parametrize("text", ["12.90", "1.5", "1.23,4", "abc", "1,2,3"])
def test_to_decimal_german_refuses_point_decimals_and_bad_grouping(text: str) -> None:
    with pytest.raises(MappingError) as err:
        to_decimal(text, german=True)
    assert err.value.message == "expected a number like 1.234,50"
    assert err.value.value == text


@pytest.mark.parametrize("text", ["", "   ", MISSING])
@pytest.mark.parametrize("german", [False, True])
def test_to_decimal_of_an_empty_field_says_it_is_empty(text: object, german: bool) -> None:
    with pytest.raises(MappingError) as err:
        to_decimal(text, german=german)
    assert err.value.message == "expected a number, but the field is empty"


def test_to_decimal_refuses_yes_no() -> None:
    with pytest.raises(MappingError) as err:
        to_decimal(True)
    assert err.value.message == "expected a number, got yes/no"


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "."]),
)
def test_format_number_parses_back_as_the_value_rounded_half_up(x: Decimal, thousands: str) -> None:
    text = format_number(x, places=2, thousands=thousands)
    assert to_decimal(text, german=True) == x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


NUMBERISH = st.text(alphabet="0123456789.,+- eE\u0660\uff11", max_size=14)


@settings(max_examples=400, deadline=None, database=None)
@given(st.one_of(st.text(), NUMBERISH), st.booleans())
def test_to_decimal_parses_any_text_or_raises_a_mapping_error(text: str, german: bool) -> None:
    try:
        result = to_decimal(text, german=german)
    except MappingError as exc:
        assert exc.message.startswith("expected a number")
    else:
        assert isinstance(result, Decimal)
        assert result.is_finite()


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27 09:14:03", "27.11.2026"),
        ("2026-11-27T09:14:03", "27.11.2026"),
        ("2026-11-27 09:14", "27.11.2026"),
        ("2026-11-27", "27.11.2026"),
        ("27.11.2026", "27.11.2026"),
        ("27.11.2026 09:14:03", "27.11.2026"),
        ("27/11/2026-08:41", "27.11.2026"),  # Rakuten France
        (" 2026-01-05 ", "05.01.2026"),
        (dt.date(2026, 1, 5), "05.01.2026"),
        (dt.datetime(2026, 1, 5, 23, 59), "05.01.2026"),
    ],
)
def test_format_date_reads_the_partner_forms_and_writes_german_dates(text: object, expected: str) -> None:
    assert format_date(text) == expected


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("27/11/2026-08:41", "yyyy-mm-dd HH:MM", "2026-11-27 08:41"),
        ("2026-11-27 09:14:03", "dd.mm.yyyy HH:MM:SS", "27.11.2026 09:14:03"),
        ("2026-11-27 09:14:03", "yyyymmdd", "20261127"),
        ("2026-11-27", "dd.mm.yy", "27.11.26"),
        ("2026-11-27", "dd% mm", "27% 11"),  # a % in the pattern is written as it stands
    ],
)
def test_format_date_with_a_custom_pattern(text: str, pattern: str, expected: str) -> None:
    assert format_date(text, pattern) == expected


def test_to_datetime_keeps_the_time_of_day() -> None:
    assert to_datetime("27/11/2026-08:41") == dt.datetime(2026, 11, 27, 8, 41)
    assert to_datetime("2026-11-27 09:14:03") == dt.datetime(2026, 11, 27, 9, 14, 3)


@pytest.mark.parametrize("text", ["2026-02-30", "31.04.2026", "27/11/2026", "11/27/2026", "tomorrow", "2026-13-01"])
def test_format_date_refuses_an_invalid_date_with_the_expected_forms(text: str) -> None:
    with pytest.raises(MappingError) as err:
        format_date(text)
    assert err.value.message == "expected a date like 2026-11-27 or 27.11.2026"
    assert err.value.value == text


@pytest.mark.parametrize("text", ["", "  ", MISSING])
def test_format_date_of_an_empty_field_says_it_is_empty(text: object) -> None:
    with pytest.raises(MappingError) as err:
        format_date(text)
    assert err.value.message == "expected a date, but the field is empty"


# --- MISSING, Record, as_list ------------------------------------------------------------------


def test_missing_renders_empty_and_is_false() -> None:
    assert str(MISSING) == ""
    assert f"{MISSING}" == ""
    assert not MISSING
    assert len(MISSING) == 0
    assert list(MISSING) == []
    assert MISSING == ""
    assert MISSING != "x"
    assert repr(MISSING) == "MISSING"


def test_missing_has_every_field_as_missing_again() -> None:
    assert MISSING.client.city.zip is MISSING
    assert MISSING["items"]["item"] is MISSING
    assert MISSING.items is MISSING  # a field, not a method


def test_missing_hides_private_attributes() -> None:
    with pytest.raises(AttributeError):
        _ = MISSING._secret


def test_record_fields_are_attributes_and_unknown_fields_are_missing() -> None:
    client = Record({"city": "Berlin"})
    order = Record({"order_no": "1-2-3", "client": client}, line=7)
    assert order.order_no == "1-2-3"
    assert order.client.city == "Berlin"
    assert order["order_no"] == "1-2-3"
    assert order.coupon is MISSING
    assert order.coupon.code is MISSING
    assert order["coupon"] is MISSING
    assert "order_no" in order
    assert "coupon" not in order
    assert order.line == 7


@pytest.mark.parametrize("name", ["items", "keys", "values", "get", "copy", "pop", "update"])
def test_record_field_named_like_a_dict_method_is_the_field(name: str) -> None:
    record = Record({name: "the field"})
    assert getattr(record, name) == "the field"
    assert record[name] == "the field"


def test_record_without_a_field_named_like_a_dict_method_has_it_missing() -> None:
    record = Record({})
    assert record.items is MISSING
    assert record.keys is MISSING


def test_record_is_true_and_loops_as_a_list_of_itself() -> None:
    record = Record({})
    assert record
    assert list(record) == [record]
    assert len(record) == 1


def test_record_private_attributes_are_not_fields() -> None:
    record = Record({"_fields": "x"})
    with pytest.raises(AttributeError):
        _ = record._secret


def test_record_to_plain_turns_nested_records_and_lists_into_data() -> None:
    item = Record({"sku": "A"})
    order = Record({"no": "1", "items": Record({"item": [item, Record({"sku": "B"})]}), "client": Record({})})
    assert order.to_plain() == {"no": "1", "items": {"item": [{"sku": "A"}, {"sku": "B"}]}, "client": {}}


def test_as_list_treats_one_record_as_a_list_of_one_and_nothing_as_empty() -> None:
    one = Record({"sku": "A"})
    two = [Record({"sku": "A"}), Record({"sku": "B"})]
    assert as_list(one) == [one]
    assert as_list(two) == two
    assert as_list(tuple(two)) == two
    assert as_list(MISSING) == []
    assert as_list(None) == []
    assert as_list("") == []


@pytest.mark.parametrize("value", ["some text", "0", 5])
def test_as_list_refuses_plain_text_saying_what_was_expected(value: object) -> None:
    with pytest.raises(MappingError) as err:
        as_list(value)
    assert err.value.message == f"expected a list of entries to repeat over, got the text {str(value)!r}"


def test_as_list_quotes_at_most_forty_characters_of_the_text() -> None:
    with pytest.raises(MappingError) as err:
        as_list("x" * 100)
    assert err.value.message == f"expected a list of entries to repeat over, got the text {'x' * 40!r}"


def test_text_methods_on_an_empty_field_give_an_empty_field() -> None:
    from gateway.mapping.templating import make_environment

    env = make_environment({})
    source = ("[{{ a.Lager.split(',') | length }}|{{ a.Lager.strip().upper() }}|"
              "{% for x in a.Lager.split(',') %}x{% endfor %}]")
    assert env.from_string(source).render(a=Record({"Lager": MISSING})) == "[0||]"
    assert env.from_string(source).render(a=Record({"Lager": " hl,al "})) == "[2|HL,AL|xx]"


def _rows(*periods: tuple[str, str]) -> list[Record]:
    return [Record({"n": str(i), "GueltigVon": von or MISSING, "GueltigBis": bis or MISSING})
            for i, (von, bis) in enumerate(periods)]


def test_valid_on_keeps_the_rows_whose_period_holds_the_day_both_ends_included() -> None:
    from gateway.mapping.values import valid_on

    rows = _rows(("01.11.2026", "30.11.2026"), ("27.11.2026", "27.11.2026"), ("28.11.2026", ""),
                 ("", "26.11.2026"), ("", ""), ("2026-11-01", "2026-11-27"))
    assert [r.n for r in valid_on(rows, "2026-11-27")] == ["0", "1", "4", "5"]
    assert [r.n for r in valid_on(rows, "28.11.2026")] == ["0", "2", "4"]


def test_valid_on_takes_a_filters_result_and_other_field_names() -> None:
    from gateway.mapping.templating import make_environment

    env = make_environment({})
    rows = [Record({"Typ": "A", "Von": "01.12.2026", "Bis": MISSING}),
            Record({"Typ": "A", "Von": MISSING, "Bis": MISSING})]
    source = "{{ rows | selectattr('Typ', 'equalto', 'A') | valid_on('2026-11-27', 'Von', 'Bis') | length }}"
    assert env.from_string(source).render(rows=rows) == "1"


def test_valid_on_refuses_a_date_it_cannot_read_naming_it() -> None:
    from gateway.mapping.values import valid_on

    with pytest.raises(MappingError) as caught:
        valid_on(_rows(("31.02.2026", "")), "2026-11-27")
    assert "expected a date like 2026-11-27 or 27.11.2026" in str(caught.value) and "31.02.2026" in str(caught.value)


def test_sort_by_number_orders_by_the_number_not_the_text_and_keeps_ties_and_empties_in_place() -> None:
    from gateway.mapping.values import sort_by_number

    rows = [Record({"n": n, "Sortierung": s}) for n, s in
            (("a", "10"), ("b", "2"), ("c", MISSING), ("d", "1.000"), ("e", "2"), ("f", "2,5"), ("g", " "))]
    assert [r.n for r in sort_by_number(rows, "Sortierung")] == ["b", "e", "f", "a", "d", "c", "g"]


def test_sort_by_number_takes_a_filters_result() -> None:
    from gateway.mapping.templating import make_environment

    env = make_environment({})
    rows = [Record({"Typ": "A", "S": "10", "n": "x"}), Record({"Typ": "B", "S": "1", "n": "y"}),
            Record({"Typ": "A", "S": "9", "n": "z"})]
    source = "{{ rows | selectattr('Typ', 'equalto', 'A') | sort_by_number('S') | map(attribute='n') | join(',') }}"
    assert env.from_string(source).render(rows=rows) == "z,x"


def test_sort_by_number_refuses_text_and_a_column_the_rows_do_not_have_naming_them() -> None:
    from gateway.mapping.values import sort_by_number

    with pytest.raises(MappingError) as caught:
        sort_by_number([Record({"Sortierung": "erstes"})], "Sortierung")
    assert "sort_by_number: expected a number like 1.234,50" in str(caught.value) and "erstes" in str(caught.value)
    with pytest.raises(MappingError, match=r"the rows have no column 'Sortierug' \(they have: Sortierung\)"):
        sort_by_number([Record({"Sortierung": "1"})], "Sortierug")
