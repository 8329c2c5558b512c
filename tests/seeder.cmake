# Tests: seeder.
