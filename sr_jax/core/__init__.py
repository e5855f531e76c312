"""The ground floor: errors, atomic writes, downloads, locks, safe weight-file reading, log quieting."""
