// Command terraform-provider-blametrail is the BlameTrail Terraform provider. Terraform starts
// it; run it with -debug to attach a debugger (it then prints a TF_REATTACH_PROVIDERS value).
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/blametrail/terraform-provider-blametrail/provider"
)

// version is set at build time with -ldflags "-X main.version=…" (goreleaser does so).
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address:         "registry.terraform.io/blametrail/blametrail",
		Debug:           *debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err)
	}
}
