"""Thresholds from the site's own history: replay its recorded model outputs and human
decisions under other bands (`loupe thresholds simulate`), recommend one with a guarantee
(`recommend`), and the band an ml user applied on /ml/models (bands, tables, views). The
arithmetic is pure, in app.policy.thresholds."""
