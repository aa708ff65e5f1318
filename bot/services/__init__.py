"""Use cases: search, hours, stations, reports, announcements, users. No transport inside."""
