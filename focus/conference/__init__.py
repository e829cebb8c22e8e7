"""Rooms, participants and the roster, as pure logic."""
