# Tests: ship.
