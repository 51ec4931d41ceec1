"""Capacity calibration: load steps on one replica, fitted to a work model per request."""
