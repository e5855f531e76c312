"""Images as arrays: reading and writing files, colour conversion, MATLAB's bicubic, the dihedral group."""
