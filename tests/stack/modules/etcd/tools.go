//go:build tools

// Package tools pins the main packages the local stack builds from this module.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
