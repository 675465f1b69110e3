package mtproto

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParsePublicKeys parses the RSA public keys of a PEM file: "RSA PUBLIC KEY"
// blocks (PKCS#1, the form Telegram publishes) and "PUBLIC KEY" blocks
// (PKIX). Any other block, a block that does not parse, trailing junk or a
// file without keys is an error naming the block.
func ParsePublicKeys(data []byte) ([]*rsa.PublicKey, error) {
	var keys []*rsa.PublicKey
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		key, err := parsePublicKeyBlock(block)
		if err != nil {
			return nil, fmt.Errorf("public keys: PEM block %d (%q): %w", n, block.Type, err)
		}
		keys = append(keys, key)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		if len(keys) == 0 {
			return nil, errors.New("public keys: no PEM block found")
		}
		return nil, fmt.Errorf("public keys: unexpected data after PEM block %d", len(keys))
	}
	if len(keys) == 0 {
		return nil, errors.New("public keys: no PEM block found")
	}
	return keys, nil
}

func parsePublicKeyBlock(block *pem.Block) (*rsa.PublicKey, error) {
	switch block.Type {
	case "RSA PUBLIC KEY":
		key, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#1 public key: %w", err)
		}
		return key, nil
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKIX public key: %w", err)
		}
		rsaKey, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PKIX public key is %T, not RSA", key)
		}
		return rsaKey, nil
	default:
		return nil, errors.New(`unsupported block type: want "RSA PUBLIC KEY" or "PUBLIC KEY"`)
	}
}
