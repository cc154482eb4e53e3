"""Training the project's own small MagicPortrait on synthetic people (`mprt train`).

Stages, as Champ / MagicPortrait train: a small KL autoencoder with SD's latent layout; then the
image stage (reference UNet + denoising UNet + guidance encoders, single frames); then the motion
stage (motion modules only, on clips). Objective: upstream's v-prediction on the zero-SNR
schedule, with the reference dropped for CFG the way upstream's unconditional half runs.
"""
