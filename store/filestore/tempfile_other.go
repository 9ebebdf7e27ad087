//go:build !linux

package filestore

import (
	"errors"
	"os"
)

var errNoUnnamed = errors.New("unnamed files are a Linux feature")

func openUnnamed(string) (*os.File, error) { return nil, errNoUnnamed }
func linkUnnamed(*os.File, string) error   { return errNoUnnamed }
func unnamedFilesWork(string) bool         { return false }
