//go:build tools

// Package tools pins the main packages the local stack builds from this module.
package tools

import (
	_ "k8s.io/kube-state-metrics/v2"
)
