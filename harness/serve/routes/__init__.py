"""The server's endpoints, one ``APIRouter`` per group: models, generation, files, fine-tuning jobs."""
