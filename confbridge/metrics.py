"""Prometheus metrics of the media engine, read when scraped (nothing is counted on the packet path).

Server-wide counters add the figures of closed legs (`MediaEngine.closed_totals`) to those of live ones, so
they never go backwards. Per-participant series (loss, jitter, round trip) carry the conference and
conferencecall ids as labels and disappear when the participant leaves. prometheus_client is the
reference client library; a registry per server keeps several servers in one process apart.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .media import MediaEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PARTICIPANT_LABELS = ["conference_id", "call_id", "codec"]


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


class MediaCollector(Collector):
    """Reads the media engine's legs and tick clock at scrape time."""

    def __init__(self, media: MediaEngine) -> None:
        self.media = media

    def collect(self) -> Iterator[Metric]:
        """Every metric family, from the engine's current state."""
        media = self.media
        legs = media.legs
        totals = media.closed_totals
        figures = [(leg, leg.statistics()) for leg in legs]

        yield GaugeMetricFamily("confbridge_media_legs", "Participants with a live RTP leg", value=len(legs))
        yield CounterMetricFamily("confbridge_media_legs_closed", "RTP legs closed since start", value=totals.legs)
        yield CounterMetricFamily("confbridge_rtp_packets_received", "RTP audio packets accepted",
                                  value=totals.packets_received + sum(_number(f["packets_received"])
                                                                      for _, f in figures))
        yield CounterMetricFamily("confbridge_rtp_packets_sent", "RTP packets sent",
                                  value=totals.packets_sent + sum(_number(f["packets_sent"]) for _, f in figures))
        dropped = CounterMetricFamily("confbridge_rtp_packets_dropped",
                                      "Packets dropped, by reason (wrong_source and wrong_ssrc: RTP bleed attempts)",
                                      labels=["reason"])
        reasons = dict(totals.dropped)
        for _, leg_figures in figures:
            leg_dropped = leg_figures["dropped"]
            if isinstance(leg_dropped, dict):
                for reason, count in leg_dropped.items():
                    reasons[reason] = reasons.get(reason, 0) + count
        for reason, count in sorted(reasons.items()):
            dropped.add_metric([reason], count)
        yield dropped

        families = {
            "packets_lost": GaugeMetricFamily("confbridge_participant_packets_lost",
                                              "Packets of the participant lost on the way to us",
                                              labels=_PARTICIPANT_LABELS),
            "fraction_lost": GaugeMetricFamily("confbridge_participant_fraction_lost",
                                               "Fraction of the participant's packets lost in the last RTCP interval",
                                               labels=_PARTICIPANT_LABELS),
            "jitter_ms": GaugeMetricFamily("confbridge_participant_jitter_seconds",
                                           "Interarrival jitter of the participant's RTP", labels=_PARTICIPANT_LABELS),
            "rtt_ms": GaugeMetricFamily("confbridge_participant_round_trip_seconds",
                                        "Round-trip time from RTCP (LSR/DLSR)", labels=_PARTICIPANT_LABELS),
            "remote_fraction_lost": GaugeMetricFamily("confbridge_participant_remote_fraction_lost",
                                                      "Fraction of our packets the participant reports lost",
                                                      labels=_PARTICIPANT_LABELS),
        }
        for leg, leg_figures in figures:
            labels = [leg.conference_id, leg.leg_id, str(leg_figures["codec"])]
            for key, family in families.items():
                value = leg_figures[key]
                if value is None:
                    continue
                family.add_metric(labels, _number(value) / 1000 if key.endswith("_ms") else _number(value))
        yield from families.values()

        clock = media.clock
        stats = clock.stats if clock is not None else None
        yield CounterMetricFamily("confbridge_mixer_ticks", "Mixer ticks run", value=stats.ticks if stats else 0)
        yield CounterMetricFamily("confbridge_mixer_late_ticks", "Ticks that ran a whole period or more late",
                                  value=stats.late_ticks if stats else 0)
        yield CounterMetricFamily("confbridge_mixer_skipped_ticks", "Ticks skipped after falling too far behind",
                                  value=stats.skipped_ticks if stats else 0)
        yield GaugeMetricFamily("confbridge_mixer_max_lateness_seconds", "Largest tick lateness seen",
                                value=stats.max_lateness if stats else 0.0)
        recent = media.lateness_figures()
        lateness = GaugeMetricFamily("confbridge_mixer_tick_lateness_seconds",
                                     "How late ticks started over the last 30 s (quantile 1 is the maximum)",
                                     labels=["quantile"])
        for quantile, key in (("0.5", "lateness_p50"), ("0.99", "lateness_p99"), ("1", "lateness_max")):
            lateness.add_metric([quantile], recent[key])
        yield lateness
        compute = GaugeMetricFamily("confbridge_mixer_tick_compute_seconds",
                                    "Time one tick took to compute and send, over the last 30 s", labels=["quantile"])
        for quantile, key in (("0.5", "tick_p50"), ("0.99", "tick_p99")):
            compute.add_metric([quantile], recent[key])
        yield compute
        stages = CounterMetricFamily("confbridge_mixer_stage_seconds", "Time spent in each stage of the tick",
                                     labels=["stage"])
        for stage, seconds in media.mixer.stage_seconds.items():
            stages.add_metric([stage], seconds)
        yield stages


def build_registry(media: MediaEngine) -> CollectorRegistry:
    """A registry holding the media collector (one per server)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MediaCollector(media))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of every metric in `registry`."""
    return generate_latest(registry)
