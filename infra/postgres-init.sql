-- One database per service: MLflow and Optuna both keep an `alembic_version` table, Prefect has its own schema.
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
CREATE DATABASE prefect;
