"""Schedules: parsing the config's plain values, and firing neither twice nor late when the clock jumps.

Pure and fast: every test passes "now" (wall and monotonic) explicitly.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.schedule import Schedule, ScheduleTimer, parse_times

DAY = dt.date(2026, 3, 5)


def at(hh_mm: str, day: int = 0) -> dt.datetime:
    """A wall time on DAY (+ ``day`` days)."""
    hour, minute = hh_mm.split(":")
    return dt.datetime.combine(DAY + dt.timedelta(days=day), dt.time(int(hour), int(minute)))


# -- parsing ----------------------------------------------------------------------------


def test_times_are_parsed_sorted_and_each_once() -> None:
    assert parse_times(["18:30", "6:00", "06:00", " 00:00 "]) == [dt.time(0, 0), dt.time(6, 0), dt.time(18, 30)]
    assert parse_times("07:15") == [dt.time(7, 15)]
    assert parse_times([]) == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("25:00", "the hour must be 00 to 23"),
        ("24:00", "midnight is 00:00"),
        ("06:75", "the minutes must be 00 to 59"),
        ("6 Uhr", "write it as HH:MM"),
        ("6", "write it as HH:MM"),
        ("06.00", "write it as HH:MM"),
        ("", "write it as HH:MM"),
        (750, "in quotes"),  # YAML 1.1 reads an unquoted 12:30 as 750
        (None, "in quotes"),
    ],
)
def test_a_wrong_time_is_refused_in_plain_words(value: object, words: str) -> None:
    with pytest.raises(ValueError, match="is not a time of day") as info:
        parse_times(["06:00", value])
    assert words in str(info.value)
    assert repr(value) in str(info.value) or f"'{value}'" in str(info.value)


@pytest.mark.parametrize(
    ("every", "at_times", "words"),
    [
        (None, None, "needs 'every_minutes', 'at' times, or both"),
        (None, [], "needs 'every_minutes', 'at' times, or both"),
        (0, None, "more than 0 minutes"),
        (-5, None, "more than 0 minutes"),
        (float("nan"), None, "more than 0 minutes"),
        (float("inf"), None, "more than 0 minutes"),
        ("15", None, "a number of minutes"),
        (True, None, "a number of minutes"),
        (15, ["6 Uhr"], "is not a time of day"),
    ],
)
def test_a_schedule_that_makes_no_sense_is_refused(every: object, at_times: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Schedule(every, at_times)  # type: ignore[arg-type]


def test_schedule_from_plain_values() -> None:
    s = Schedule(every_minutes=15, at=["18:30", "06:00"])
    assert s.every_minutes == 15.0 and s.every_seconds == 900.0
    assert s.at == (dt.time(6), dt.time(18, 30))
    assert s.describe() == "every 15 min and at 06:00, 18:30"
    assert Schedule(at=["6:00"]).describe() == "at 06:00"
    assert Schedule(0.5).describe() == "every 0.5 min"
    assert s == Schedule(15.0, ["06:00", "18:30"]) and s != Schedule(15)
    assert "18:30" in repr(s)


# -- pure wall-clock questions ----------------------------------------------------------


def test_next_due() -> None:
    every = Schedule(every_minutes=15)
    assert every.next_due(at("10:00")) == at("10:15")
    times = Schedule(at=["06:00", "18:30"])
    assert times.next_due(at("05:00")) == at("06:00")
    assert times.next_due(at("06:00")) == at("18:30")  # strictly after
    assert times.next_due(at("19:00")) == at("06:00", day=1)
    both = Schedule(every_minutes=60, at=["06:00"])
    assert both.next_due(at("05:30")) == at("06:00")
    assert both.next_due(at("06:00")) == at("07:00")


def test_due() -> None:
    every = Schedule(every_minutes=15)
    assert every.due(at("10:00"), None)  # never ran
    assert not every.due(at("10:14"), at("10:00"))
    assert every.due(at("10:15"), at("10:00"))
    times = Schedule(at=["06:00"])
    assert not times.due(at("10:00"), None)  # only `at` times: count from a start
    assert not times.due(at("05:59"), at("05:00"))
    assert times.due(at("06:00"), at("05:00"))
    assert times.due(at("06:00", day=3), at("05:00"))  # three missed days: due once, not three times


def test_due_after_the_clock_went_back_runs_once_instead_of_stalling() -> None:
    for schedule in (Schedule(every_minutes=15), Schedule(at=["06:00"])):
        last_run = at("12:00")  # the clock then said noon; now it says 10:00
        assert schedule.due(at("10:00"), last_run)
        last_run = at("10:00")  # the caller records the run with the corrected clock
        assert not schedule.due(at("10:05"), last_run)


# -- the timer of a running service -----------------------------------------------------


def test_an_interval_runs_at_start_then_counts_monotonic_time_from_the_end_of_a_run() -> None:
    timer = ScheduleTimer(Schedule(every_minutes=1), wall=at("10:00"))
    assert timer.due(at("10:00"), 1000.0)
    assert timer.seconds_until_due(at("10:00"), 1000.0) == 0.0
    timer.ran(started_wall=at("10:00"), finished_mono=1005.0)  # the run took 5 s
    assert not timer.due(at("10:01"), 1064.0)
    assert timer.seconds_until_due(at("10:01"), 1064.0) == pytest.approx(1.0)
    assert timer.due(at("10:01"), 1065.0)


def test_an_interval_ignores_wall_clock_jumps() -> None:
    timer = ScheduleTimer(Schedule(every_minutes=10), wall=at("10:00"))
    timer.ran(started_wall=at("10:00"), finished_mono=0.0)
    # the wall clock jumps a day back, then two days forward: only monotonic time counts
    assert not timer.due(at("10:00", day=-1), 60.0)
    assert not timer.due(at("10:00", day=2), 120.0)
    assert timer.seconds_until_due(at("10:00", day=2), 120.0) == pytest.approx(480.0)
    assert timer.due(at("10:00", day=-1), 600.0)


def test_at_times_before_the_start_do_not_run() -> None:
    timer = ScheduleTimer(Schedule(at=["06:00", "18:30"]), wall=at("06:10"))
    assert not timer.due(at("06:10"), 0.0)
    assert timer.seconds_until_due(at("06:10"), 0.0) == pytest.approx((at("18:30") - at("06:10")).total_seconds())
    assert not timer.due(at("18:29"), 1.0)
    assert timer.due(at("18:30"), 2.0)


def test_missed_at_times_coalesce_into_one_run() -> None:
    timer = ScheduleTimer(Schedule(at=["06:00", "18:30"]), wall=at("05:00"))
    # the machine was suspended, or the clock jumped forward two days
    now = at("12:00", day=2)
    assert timer.due(now, 0.0)
    timer.ran(started_wall=now, finished_mono=1.0)
    assert not timer.due(now, 2.0)
    assert not timer.due(at("18:29", day=2), 3.0)
    assert timer.due(at("18:30", day=2), 4.0)


def test_the_clock_set_back_after_a_run_does_not_fire_the_same_time_again() -> None:
    timer = ScheduleTimer(Schedule(at=["06:00", "18:30"]), wall=at("05:00"))
    assert timer.due(at("06:00"), 0.0)
    timer.ran(started_wall=at("06:00"), finished_mono=0.5)
    # NTP sets the clock back by 30 minutes; 06:00 comes round again
    assert not timer.due(at("05:31"), 60.0)
    assert not timer.due(at("06:00"), 1800.0)
    assert not timer.due(at("06:01"), 1860.0)
    assert timer.seconds_until_due(at("06:01"), 1860.0) == pytest.approx((at("18:30") - at("06:01")).total_seconds())
    assert timer.due(at("18:30"), 50000.0)


def test_the_clock_set_back_by_a_day_does_not_stall_the_schedule() -> None:
    # the clock was a day ahead when the service started and ran the morning export
    timer = ScheduleTimer(Schedule(at=["06:00"]), wall=at("05:00", day=1))
    timer.ran(started_wall=at("06:00", day=1), finished_mono=0.0)
    # the date is corrected: today 05:00. The next run is today 06:00, not tomorrow 06:00 plus a day
    assert not timer.due(at("05:00"), 10.0)
    assert timer.seconds_until_due(at("05:00"), 10.0) == pytest.approx(3600.0)
    assert not timer.due(at("05:59"), 3550.0)
    assert timer.due(at("06:00"), 3610.0)
    timer.ran(started_wall=at("06:00"), finished_mono=3611.0)
    assert not timer.due(at("06:30"), 5400.0)
    # tomorrow 06:00 fired already under the wrong clock: not again
    assert not timer.due(at("06:00", day=1), 90000.0)
    assert timer.due(at("06:00", day=2), 180000.0)


def test_the_repeated_hour_in_autumn_fires_once() -> None:
    timer = ScheduleTimer(Schedule(at=["02:30"]), wall=at("01:00"))
    assert timer.due(at("02:30"), 0.0)
    timer.ran(started_wall=at("02:30"), finished_mono=1.0)
    # 03:00 summer time becomes 02:00 winter time: local wall time goes back an hour
    assert not timer.due(at("02:59"), 1740.0)
    assert not timer.due(at("02:00"), 1800.0)
    assert not timer.due(at("02:30"), 3600.0)
    assert not timer.due(at("03:00"), 5400.0)
    assert timer.due(at("02:30", day=1), 90000.0)


def test_every_and_at_together() -> None:
    timer = ScheduleTimer(Schedule(every_minutes=60, at=["06:00"]), wall=at("05:30"))
    assert timer.due(at("05:30"), 0.0)  # the interval runs at start
    timer.ran(started_wall=at("05:30"), finished_mono=1.0)
    assert timer.seconds_until_due(at("05:31"), 61.0) == pytest.approx(29 * 60.0)  # 06:00 comes first
    assert timer.due(at("06:00"), 1801.0)
    timer.ran(started_wall=at("06:00"), finished_mono=1802.0)
    assert timer.seconds_until_due(at("06:00"), 1802.0) == pytest.approx(3600.0)
