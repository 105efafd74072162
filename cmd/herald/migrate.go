package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (also done at every start)",
		Long:  "Apply the embedded schema migrations that the database has not recorded yet. Running it again changes nothing.\n" + configHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := resolve(cmd); err != nil {
				return err
			}
			log, err := c.cliLogger()
			if err != nil {
				return err
			}
			s, err := openStore(cmd.Context(), &c, log)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s schema at version %d\n", s.Dialect(), v)
			return nil
		},
	}
	storeFlags(cmd.Flags(), &c)
	return cmd
}
