#!/bin/sh
echo downloaded
