"""`loupe simulate`: the whole loop run against a running Loupe, through its public
interfaces only (the station API, the pages as a browser uses them), with garments whose
defects are known. A demo a site can run before go-live, and the check that the loop
works over "days": the field report's daily table, compared with the truth.

- garments.py: procedural garment photos with planted defects (models.training.synthetic)
  and their truth;
- actors.py: stations that upload, inspectors that log in and work the queue (CSRF,
  leases, an error rate and a pace), the admin that creates the inspectors;
- days.py: the daily table from what the API says about each garment (pure);
- cli.py: the command.
"""
