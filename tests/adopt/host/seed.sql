-- Data written through the lemmy-ansible stack before the adoption; verify.yml finds it afterwards.
BEGIN;
UPDATE site SET name = 'Adopted Lemmy';
UPDATE local_site_rate_limit SET message = 999, post = 12;
INSERT INTO person (name, actor_id, instance_id)
  SELECT 'adopter', 'https://lemmy.adopt.test/u/adopter', id FROM instance WHERE domain = 'lemmy.adopt.test';
INSERT INTO community (name, title, actor_id, instance_id)
  SELECT 'adopted', 'Adopted community', 'https://lemmy.adopt.test/c/adopted', id FROM instance WHERE domain = 'lemmy.adopt.test';
INSERT INTO post (name, body, creator_id, community_id, ap_id)
  SELECT 'Kept across the adoption', 'first', p.id, c.id, 'https://lemmy.adopt.test/post/1'
  FROM person p, community c WHERE p.name = 'adopter' AND c.name = 'adopted';
INSERT INTO post (name, body, creator_id, community_id, ap_id)
  SELECT 'Also kept', 'second', p.id, c.id, 'https://lemmy.adopt.test/post/2'
  FROM person p, community c WHERE p.name = 'adopter' AND c.name = 'adopted';
COMMIT;
