"""A station's region is where it stands: its district's adcode, derived from its position.

Sheets carry a region column, often empty, outdated (440184 became 440117 in 2015) or simply wrong; staff
scope, announcement audiences and `/stale` go by region, so a wrong one hides a station from the staff who
should see it. Imports therefore keep the derived district and warn when the sheet says otherwise; a position
with no region (outside China, or at sea) is reported, and rejected with `--strict`.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from domain.values import StationRecord
from storage.importers import _ERROR_LINE, N_, RowError, Text
from storage.regions import SNAP_DEG, Region, RegionIndex

__all__ = ["RegionCheck", "derive_regions", "sheet_agrees"]

_SNAP_M = round(SNAP_DEG * 111_000, -1)
_FIELDS = tuple(f.name for f in dataclasses.fields(StationRecord))
_VALUES = operator.attrgetter(*_FIELDS)
_REGION = _FIELDS.index("region")


def _with_region(record: StationRecord, region: str) -> StationRecord:
    # Half the cost of dataclasses.replace, which an import of the national network pays 186,100 times.
    values = list(_VALUES(record))
    values[_REGION] = region
    return StationRecord(*values)


@dataclass
class RegionCheck:
    """Records with their derived regions, and what the comparison with the sheet found."""

    records: list[StationRecord]
    rows: list[int]
    warnings: list[str] = field(default_factory=list)  # `Text`s: rendered in the sheet's language
    errors: list[RowError] = field(default_factory=list)


def sheet_agrees(sheet: str, region: Region) -> bool:
    """Whether a sheet's region names the district or one of its parents, as a full adcode (440106,
    440100, 440000) or as a prefix (4401, 44)."""
    if sheet in (region.adcode, region.city_adcode, region.province_adcode):
        return True
    return len(sheet) in (2, 4) and sheet.isdigit() and region.adcode.startswith(sheet)


def derive_regions(
    records: Sequence[StationRecord],
    rows: Sequence[int],
    index: RegionIndex,
    unit: str = "row",
    strict: bool = False,
) -> RegionCheck:
    """Set every record's region to its position's district. CPU-bound (vectorised look-ups): call it from
    a worker thread in async code. `rows` numbers the records as the file does, for the messages."""
    lat = np.fromiter((r.lat for r in records), dtype=np.float64, count=len(records))
    lon = np.fromiter((r.lon for r in records), dtype=np.float64, count=len(records))
    found = index.lookup_many(lat, lon).tolist()
    regions = index.regions
    check = RegionCheck([], [])
    for record, row, i in zip(records, rows, found, strict=True):
        sheet = record.region.strip()
        if i < 0:
            reason = Text(
                N_(
                    "position {lat:.6f}, {lon:.6f} lies outside China or at sea (no administrative region "
                    "within about {metres:g} m); check latitude and longitude and the coordinate system "
                    "(--crs)"
                ),
                lat=record.lat,
                lon=record.lon,
                metres=_SNAP_M,
            )
            if strict:
                check.errors.append(RowError.of(row, [reason], unit))
                continue
            if sheet:
                reason = Text(N_("{reason}; the sheet's region {sheet} is kept"), reason=reason, sheet=sheet)
            check.warnings.append(Text(_ERROR_LINE[unit], row=row, reason=reason))
            check.records.append(record)
            check.rows.append(row)
            continue
        region = regions[i]
        if sheet and not sheet_agrees(sheet, region):
            named = index.name_of(sheet)
            reason = Text(
                N_(
                    "the sheet gives region {sheet} ({sheet_name}), but the position lies in {adcode} "
                    "({label}); {adcode} is kept"
                ),
                sheet=sheet,
                sheet_name=named or Text(N_("not a current adcode")),
                adcode=region.adcode,
                label=region.label,
            )
            check.warnings.append(Text(_ERROR_LINE[unit], row=row, reason=reason))
        if record.region != region.adcode:
            record = _with_region(record, region.adcode)
        check.records.append(record)
        check.rows.append(row)
    return check


@dataclass(frozen=True, slots=True)
class RegionScope:
    """The regions (adcode prefixes, as `Access.regions`) whose stations an import may hold: a clerk of
    4401 imports Guangzhou's stations, not Shenzhen's, whatever the sheet says."""

    prefixes: tuple[str, ...]

    @property
    def everywhere(self) -> bool:
        return "" in self.prefixes

    def allows(self, adcode: str) -> bool:
        return any(adcode.startswith(prefix) for prefix in self.prefixes) and (
            self.everywhere or bool(adcode)
        )

    def _where(self, adcode: str, index: RegionIndex) -> Text:
        return Text(
            N_("{adcode} ({label}), outside your regions ({regions})"),
            adcode=adcode,
            label=index.name_of(adcode) or Text(N_("not a current adcode")),
            regions=", ".join(self.prefixes),
        )

    def restrict(self, check: RegionCheck, index: RegionIndex, unit: str = "row") -> RegionCheck:
        """`check` (derived strictly, so every region is where the station stands) without the records
        outside the scope, each one a row error instead."""
        kept = RegionCheck([], [], check.warnings, list(check.errors))
        for record, row in zip(check.records, check.rows, strict=True):
            if self.allows(record.region):
                kept.records.append(record)
                kept.rows.append(row)
                continue
            reason = Text(N_("the station stands in {where}"), where=self._where(record.region, index))
            kept.errors.append(RowError.of(row, [reason], unit, ("lat",)))
        return kept

    def foreign_code(self, code: str, region: str, row: int, unit: str, index: RegionIndex) -> RowError:
        """The row error of a row whose code is a station's of another region."""
        reason = Text(
            N_("code {code} is a station in {where}"), code=repr(code), where=self._where(region, index)
        )
        return RowError.of(row, [reason], unit, ("code",))
