"""Privacy and evidence: what is kept of shoppers' images, for how long, who saw it, and how it
is handed over (docs/PRIVACY.md).

- `files`: the files of one incident's evidence under the evidence folder, by kind;
- `redact`: heads blurred (from pose keypoints, else the top of the person's box), privacy
  zones blacked out, whole persons blurred;
- `media`: frames to and from clip files;
- `purge`: retention per store and kind, legal holds (the scheduled purge);
- `cases`: case files for the police and insurers, subject access requests, erasure;
- `report`: the DPIA annex and the signage text from the site file.

SQL stays in `warehouse` (evidence_log: the access log and legal holds; disclosures: the
disclosure register and access requests).
"""
