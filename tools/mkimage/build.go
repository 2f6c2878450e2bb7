package main

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageSpec is everything needed to build one image.
type ImageSpec struct {
	Layers []LayerSpec
	Config v1.Config
	// Platform is os/arch[/variant]; the config records it.
	Platform v1.Platform
	// Compression is gzip, zstd or none.
	Compression string
	// Docker selects Docker v2 schema 2 media types instead of OCI ones.
	Docker bool
	// Created is the config's creation time; fixed by default so rebuilds
	// of the same inputs push the same digests.
	Created time.Time
}

// buildImage assembles the image; layer files are written under tmp, which
// must outlive every use of the returned image.
func buildImage(spec ImageSpec, tmp string) (v1.Image, error) {
	mt, err := layerMediaType(spec.Compression, spec.Docker)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	img := empty.Image
	if spec.Docker {
		img = mutate.MediaType(img, types.DockerManifestSchema2)
		img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	} else {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	created := v1.Time{Time: spec.Created.UTC()}
	for i, ls := range spec.Layers {
		l, err := buildLayer(ls, spec.Compression, mt, tmp)
		if err != nil {
			return nil, fmt.Errorf("build image: layer %d: %w", i+1, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: l,
			History: v1.History{
				Created:   created,
				CreatedBy: fmt.Sprintf("mkimage: %s %s", ls.Kind, ls.Path),
			},
		})
		if err != nil {
			return nil, fmt.Errorf("build image: append layer %d: %w", i+1, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Config = spec.Config
	cf.Created = created
	cf.OS = spec.Platform.OS
	cf.Architecture = spec.Platform.Architecture
	cf.Variant = spec.Platform.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: set config: %w", err)
	}
	return img, nil
}

// buildIndex makes a multi-platform index of imgs, each entry carrying the
// platform recorded in its image's config.
func buildIndex(imgs []v1.Image, docker bool) (v1.ImageIndex, error) {
	var idx v1.ImageIndex = empty.Index
	if docker {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	} else {
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	}
	for i, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("build index: image %d: read config: %w", i+1, err)
		}
		mt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("build index: image %d: %w", i+1, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: mt,
				Platform:  &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
			},
		})
	}
	return idx, nil
}
