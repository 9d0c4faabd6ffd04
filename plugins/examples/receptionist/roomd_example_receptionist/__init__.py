"""A receptionist agent: greets, answers, tells the time and looks up opening hours."""
