// Package migrations embeds Herald's SQL schema, one numbered set per
// supported database. Files are named NNNN_description.sql and applied in
// order, each in its own transaction, by store.Migrate.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations.
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
