"""The monthly health report: a month's headline numbers from the history store and earlier reports' sidecars."""
from __future__ import annotations
