// Command tiercel runs a Tiercel broker and its tools.
//
//	tiercel [serve] [flags]   run a broker (the default)
//	tiercel bench ...         load generator (produce, consume)
//	tiercel inspect ...       print a segment, a manifest, the metadata or the lease
//	tiercel cost [flags]      storage and request cost report across the cluster
//	tiercel help              this text
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `tiercel: a Kafka-compatible broker that keeps the hot end of each partition on
local disk and offloads sealed segments to S3-compatible object storage.

Usage:
  tiercel [serve] [flags]     run a broker (serve is the default)
  tiercel bench <produce|consume|e2e> [flags]
                              drive load with franz-go and report MB/s, records/s
                              and latency percentiles
  tiercel inspect <segment|manifest|metadata|lease> [flags]
                              print a local segment file (batches, offsets,
                              timestamps, CRC check), a partition's remote
                              manifest, the cluster metadata or the lease
  tiercel cost [flags]        per-topic local and remote bytes, S3 requests and
                              the estimated monthly cost, against classic Kafka
                              on replicated EBS
  tiercel help [command]      show help

Run "tiercel <command> --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches subcommands and returns the exit code: 0 on success, 2 on
// a usage error (bad flag or setting), 1 on a runtime failure.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		// "tiercel --help" is about the program, not only its default
		// command; "tiercel serve --help" lists serve's flags.
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdout, stderr)
	case "bench":
		err = bench(args, stdout, stderr)
	case "inspect":
		err = inspect(args, stdout, stderr)
	case "cost":
		err = cost(args, stdout, stderr)
	case "help":
		if len(args) > 0 {
			return run([]string{args[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tiercel: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tiercel %s: %v\n", cmd, err)
		return 2
	default:
		fmt.Fprintf(stderr, "tiercel %s: %v\n", cmd, err)
		return 1
	}
}

// usageError marks a bad flag, argument or setting: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}
