-- placeholder, replaced at merge
SELECT 1;
