"""Heron's HTTP side: health, the Events API endpoint, later metrics and the dashboard."""
