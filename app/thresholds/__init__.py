"""Thresholds from the site's own history: replay its recorded model outputs and human
decisions under other bands (`loupe thresholds simulate`). The arithmetic is pure, in
app.policy.thresholds; this package reads the history and prints it."""
