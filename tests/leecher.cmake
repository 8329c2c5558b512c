# Tests: leecher.
