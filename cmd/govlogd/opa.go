package main

import (
	"flag"

	"github.com/govlog/govlog/internal/opa"
	"github.com/govlog/govlog/server"
)

// addOPAFlags adds the flags of OPA's decision-log endpoint (POST
// /v1/opa/decision-logs; see docs/opa.md): where the subject, action and
// resource of a decision are in OPA's input, and whether the raw input is
// kept.
func addOPAFlags(fs *flag.FlagSet, c *server.OPAConfig) {
	fs.StringVar(&c.Mapping.Subject, "opa-subject", opa.DefaultSubject, "JSON `pointer` of a decision's subject in OPA's input (absent: the OPA client's address)")
	fs.StringVar(&c.Mapping.Action, "opa-action", opa.DefaultAction, "JSON `pointer` of a decision's action in OPA's input (absent: the policy path)")
	fs.StringVar(&c.Mapping.Resource, "opa-resource", opa.DefaultResource, "JSON `pointer` of a decision's resource in OPA's input (absent: none)")
	fs.BoolVar(&c.Mapping.StoreInput, "opa-store-input", false, "log OPA's raw input in each decision's context (default: only its digest)")
	fs.Int64Var(&c.MaxUploadBytes, "opa-max-upload-bytes", server.DefaultOPAMaxUploadBytes, "largest OPA decision-log upload, compressed and decompressed")
}
