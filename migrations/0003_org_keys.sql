CREATE TABLE `org_keys` (
	`org_id` text PRIMARY KEY NOT NULL,
	`recipient` text NOT NULL,
	`identity_ciphertext` text NOT NULL,
	`identity_key_id` text NOT NULL,
	`created_at` integer NOT NULL
);
