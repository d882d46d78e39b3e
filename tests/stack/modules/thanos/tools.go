//go:build tools

// Package tools pins the main packages the local stack builds from this module.
package tools

import (
	_ "github.com/thanos-io/thanos/cmd/thanos"
)
